"""The workshop: exercises that check themselves, built on the stage history.

Each exercise is one piece of a refactoring step, blanked out of the stage
tree where it appears. ``./exercise start N.M`` builds the stage history
from the checked-out commit, makes a git worktree under ``workspaces/N.M``
on the branch ``exercise/N.M`` off that stage's commit, removes the
solution there (the code raises an error that names the exercise) and
commits that starting point. ``check`` runs the exercise's tests in the
workspace and turns their failures into what is missing and which hint
helps; ``solution`` prints the reference diff; ``reset`` returns to the
starting point; ``list`` shows who passes. ``prove`` (CI) proves every
exercise both ways.

The catalogue is ``workshop/exercises/`` (one module per exercise); the
mechanics are ``blank`` (removing a solution), ``workspace`` (git),
``checking`` (pytest and its teaching) and ``cli``.
"""
