"""Powertools Logger shared by every entry point (JSON lines, service name, correlation ids)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="gme-autorecord")
