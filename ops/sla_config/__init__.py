"""Policy as code: ``manage.py sla_config export|import`` reads and writes tiers (hours,
holidays, policies, steps), watched channels and engineers as YAML.

schema.py checks a file and names the path of every bad key; exporting.py writes the
database out; importing.py makes the database match a file, in one transaction.
"""
