from charters.starter.cli import app

app(prog_name="charters")
