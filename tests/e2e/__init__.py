"""End-to-end tests: a real pycti helper against a real RabbitMQ and a fake OpenCTI platform."""
