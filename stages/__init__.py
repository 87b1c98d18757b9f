"""The refactoring stages as data (``stages.table``), the markers that say
which stage each file and code block belongs to (``stages.markers``), and the
generated stage history built from them (``stages.history``).

Standard library only: ``scripts/up.py --print`` and ``make stage-tags``
run without the virtualenv.
"""
