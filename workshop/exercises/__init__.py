"""One module per exercise (``ex_<stage>_<n>.py``, each defines ``EXERCISE``)."""
