"""Steering engines: each fits interventions from data and hands them to the runtime."""
