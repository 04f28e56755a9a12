"""Live hardware telemetry: NVML and psutil sampling into system events, and its run summary."""
