"""The ``nba`` command line: the one place (with the app factory) that wires packages together.

One module per command group: :mod:`cli.data` (simulate, validate, contract,
public data sets), :mod:`cli.features`, :mod:`cli.models` (train, evaluate,
recommend, registry), :mod:`cli.decide` (batch decisions), :mod:`cli.serve`
(the HTTP API), :mod:`cli.experiments` and :mod:`cli.ope`; :mod:`cli.support`
holds what they share (errors, console, data loading). :mod:`cli.main` is the
entry point.
"""
