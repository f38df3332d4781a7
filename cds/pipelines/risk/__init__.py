"""Risk: patients scored by a validated equation or an ML risk model, one at a time, by panel, or by cohort file.

* :mod:`~cds.pipelines.risk.equation`: :class:`EquationPipeline`, inputs → typed :class:`~cds.results.risk.RiskResult`.
* :mod:`~cds.pipelines.risk.model`: an ML risk model behind any backend, adapted to the equation interface.
* :mod:`~cds.pipelines.risk.panel`: a patient's cardiovascular, diabetes and kidney panel.
* :mod:`~cds.pipelines.risk.cohort_file`: a cohort file scored in chunks.
"""
