from greengauge.cli import app

app()
