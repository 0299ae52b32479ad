"""Dataset loaders: each format becomes one event stream with item features and user attributes."""
