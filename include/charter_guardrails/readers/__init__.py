"""Datasets as DataFrames: French CSV dialects, Parquet, SQL tables; bounded and with clear errors."""
