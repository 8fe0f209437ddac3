"""The embedded local stack: Temporal dev server, moto, HTTP stand-ins. Never imported by
workflows or activities, which do not know they are local."""
