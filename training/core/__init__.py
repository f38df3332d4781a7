"""The one training core every torch model in ``training/`` uses: config, distributed setup, the fit loop."""
