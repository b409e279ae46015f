"""The desktop app (PySide6). The only package that imports Qt; every action calls aldesk.app."""

from aldesk.ui.qtcompat import guard_refcount_bug

guard_refcount_bug()
