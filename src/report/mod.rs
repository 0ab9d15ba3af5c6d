//! Rendering a diagnosis as text, Markdown or JSON (pure).
