//! Configuration: opentracker-style config file and command line.
