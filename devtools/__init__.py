"""Process launchers for `make run`, the tests and the benchmarks: local stand-ins for production
services (clamd, Redis, moto S3) and the development stack. Not part of the web app."""
