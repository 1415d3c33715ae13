from roboreward.cli import app

app()
