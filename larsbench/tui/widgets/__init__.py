"""The app's own widgets: plots, the device panel, the trust-ratio heatmap and table."""
