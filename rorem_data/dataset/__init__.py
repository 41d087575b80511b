"""The dataset layer: the only package that reads or writes the database (FiftyOne, pymongo)."""
