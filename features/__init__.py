"""Features: the data contract, validation and data sets; behavioural profiles in
batch, at points in time, on Spark and online in Redis, from one set of definitions."""
