"""The only place that speaks SQL: the project database, its schema and its migrations.

Knows rows, not pixels: previews and feature vectors pass through as bytes/arrays, never decoded
images. Never imports Qt or the imaging code.
"""

from aldesk.store.project import OpenStatus, Project, PROJECT_DB_NAME, SCHEMA_VERSION

__all__ = ["OpenStatus", "Project", "PROJECT_DB_NAME", "SCHEMA_VERSION"]
