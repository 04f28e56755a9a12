"""The app's screens: configure (start), live, results, and the small dialogs."""
