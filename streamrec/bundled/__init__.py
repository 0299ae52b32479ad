"""Data shipped inside the package: ml-latest-small (GroupLens licence in its README.txt.gz)."""
