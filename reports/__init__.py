"""Degradation reports (installed as ``editguard.reports``): tables and files rendered from the
rows the tests ship."""
