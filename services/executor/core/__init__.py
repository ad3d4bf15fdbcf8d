"""The executor's decisions without I/O: state and facts in, new state and typed effects out.

No module here reads a clock, Redis, the database or the exchange; the shell
(``services.executor``) reads the facts, passes the present in, and performs the effects.
"""
