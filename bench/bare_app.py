"""The baseline for bench/submit.py: a bare Flask endpoint that inserts one row."""
import os
import uuid

from flask import Flask, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_pre_ping=True)


@app.post("/bare")
def bare():
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO bench_bare (submission_id, score) VALUES (:s, :v)"),
                     {"s": request.form.get("submission_id") or uuid.uuid4().hex, "v": int(request.form.get("v", 5))})
    return "ok"
