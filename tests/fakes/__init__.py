"""Stateful fake forges for the adapter tests: real HTTP on loopback, real git repos behind them."""
