"""The norm story's evidence: measurements, comparison grids, figures and reports."""
