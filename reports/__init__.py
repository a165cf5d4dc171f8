"""Degradation reports: rows shipped from the tests, tables and files written by the controller."""
