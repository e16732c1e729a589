"""Fuzzing with hypothesis and schemathesis: every MQTT payload parser (test_contract_fuzz), the
server's MQTT ingestion end to end (test_link_fuzz) and every HTTP endpoint against the OpenAPI
document (test_http_fuzz). Short form by default; `pytest -m long` for many more examples.
"""
