//! The only code that knows YAML.
//! STUB: to be implemented.
