"""Analyses of representations and steering behaviour (CRH cylinder geometry and its sweep)."""
