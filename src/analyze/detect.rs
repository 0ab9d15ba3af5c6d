//! Anomaly detection for any metric series.
