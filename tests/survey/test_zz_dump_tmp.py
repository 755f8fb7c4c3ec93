from .conftest import survey_path
def test_dump(client, window_code):
    r = client.get(survey_path(window_code))
    open("/tmp/page.html","w").write(r.get_data(as_text=True))
    print(dict(r.headers))
