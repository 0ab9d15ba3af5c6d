//! The simulator: a realistic gateway instance with injected incidents.
