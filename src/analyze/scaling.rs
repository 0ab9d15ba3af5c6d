//! Capacity, scaling-configuration and quota checks.
