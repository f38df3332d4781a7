"""Use cases: one function per thing a user or a system asks of cds.

Routes, CDS Hooks, the CLI and the job worker call the same functions.

* :mod:`~cds.services.engine`: :class:`~cds.services.engine.Engine`, what every use case runs on (settings,
  registry, database, the backend factory, served risk models, metrics).
* :mod:`~cds.services.risk`: score and release a risk result (one patient, a FHIR Bundle, a patient's panel, CDS
  Hooks cards).
* :mod:`~cds.services.cohort`: queue a cohort file and score it as a job.
* :mod:`~cds.services.stow`: accept STOW-RS instances and queue their pre-read.
* :mod:`~cds.services.preread`: run a pre-read (routing series to models, writing outputs) and find its outcomes.
* :mod:`~cds.services.pathology`: queue a slide and read it as a job.
* :mod:`~cds.services.feedback`: record a reader's verdict on a finding.

Services know nothing of HTTP: they take typed requests and an :class:`~cds.store.audit.Actor`, store and audit
what they release, and raise :class:`~cds.errors.CdsError` subclasses that the API layer maps to statuses.
"""
