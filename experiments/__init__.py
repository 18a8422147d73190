"""Experiments: the retailer simulator with ground truth; assignment, decision logs and
analysis of campaigns."""
