//! APIM policy XML: expression-aware reading, effective policy, linting.
