"""The project's objective: what "better" means when the tool trains, selects a model and compares strategies.

Stored in the project settings as ``objective`` (one of learning.objectives.OBJECTIVES) and
``specificity`` (for sensitivity_at_specificity). Unset, a project with ordered classes (the review
setting ``ordered_classes``: BI-RADS, DR grades) is judged by quadratic-weighted kappa, any other by accuracy.
"""

from __future__ import annotations

from numbers import Real

from aldesk.errors import ProjectError
from aldesk.learning.objectives import DEFAULT_SPECIFICITY, OBJECTIVES
from aldesk.store import Project


def project_objective(project: Project, override: str | None = None) -> tuple[str, bool]:
    """(objective, ordered): ``override`` if given, else the project's setting, else its default."""
    settings = project.settings()
    ordered = bool(settings.get("ordered_classes", False))
    objective = override or settings.get("objective") or ("quadratic_kappa" if ordered else "accuracy")
    _check(objective, len(project.classes))
    return objective, ordered


def objective_settings(project: Project) -> dict:
    objective, ordered = project_objective(project)
    settings = project.settings()
    return {"objective": objective, "ordered": ordered, "specificity": float(settings.get("specificity", DEFAULT_SPECIFICITY)),
            "explicit": "objective" in settings, "choices": list(OBJECTIVES)}


def set_objective(project: Project, objective: str, *, specificity: float | None = None) -> dict:
    """Store the objective (checked against the project's classes); returns objective_settings."""
    _check(objective, len(project.classes))
    values: dict = {"objective": objective}
    if specificity is not None:
        if isinstance(specificity, bool) or not isinstance(specificity, Real) or not 0.5 <= float(specificity) < 1.0:
            raise ProjectError(f"specificity == {specificity!r}, must be a number from 0.5 to below 1 (e.g. 0.9)")
        values["specificity"] = float(specificity)
    project.update_settings(**values)
    return objective_settings(project)


def _check(objective: str, n_classes: int) -> None:
    if objective not in OBJECTIVES:
        raise ProjectError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if objective == "sensitivity_at_specificity" and n_classes != 2:
        raise ProjectError(f"objective sensitivity_at_specificity needs 2 classes, this project has {n_classes}; "
                           f"choose balanced_accuracy")
