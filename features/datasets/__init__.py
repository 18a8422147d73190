"""Public data sets converted into the nba data contract."""
