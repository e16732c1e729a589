"""Bulk dossier import: every row checked, bad rows named by line, all or nothing."""
from __future__ import annotations

GOOD = """code,procedure,field,received,due,returned,channel
HS-100,Cấp giấy chứng nhận quyền sử dụng đất,dat-dai,2026-11-02,2026-11-20,2026-11-19,in_person
HS-101,Đăng ký khai sinh,ho-tich,10/11/2026,12/11/2026,,online
"""


def test_a_good_file_imports_every_row(clerk, manager):
    response = clerk.post("/api/v1/dossiers/import", data=GOOD.encode("utf-8-sig"), content_type="text/csv")
    assert response.status_code == 201, response.json
    assert response.json == {"imported": 2, "returned": 1}
    assert clerk.get("/api/v1/dossiers/HS-100").json["outcome"] == "early"
    assert clerk.get("/api/v1/dossiers/HS-101").json["outcome"] == "overdue"  # due 12 Nov, today 23 Nov


def test_bad_rows_are_named_and_nothing_is_imported(clerk):
    bad = GOOD + "\n".join([
        "HS-100,Trùng mã,dat-dai,2026-11-02,2026-11-20,,",
        ",Không có mã,dat-dai,2026-11-02,2026-11-20,,",
        "HS-102,Sai lĩnh vực,xay-dung,2026-11-02,2026-11-20,,",
        "HS-103,Sai ngày,dat-dai,2026-13-02,2026-11-20,,",
        "HS-104,Hẹn trước nhận,dat-dai,2026-11-20,2026-11-02,,",
        "HS-105,Sai kênh,dat-dai,2026-11-02,2026-11-20,,fax",
    ]) + "\n"
    response = clerk.post("/api/v1/dossiers/import", data=bad, content_type="text/csv")
    assert response.status_code == 422
    problems = response.json["error"]["details"]["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [
        (4, "code"), (5, "code"), (6, "field"), (7, "received"), (8, "due"), (9, "channel"),
    ]
    assert clerk.get("/api/v1/dossiers").json == []


def test_missing_columns_and_empty_files(clerk):
    response = clerk.post("/api/v1/dossiers/import", data="code,procedure\nA,B\n", content_type="text/csv")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_header"
    response = clerk.post("/api/v1/dossiers/import", data="code,procedure,field,received,due\n", content_type="text/csv")
    assert response.status_code == 400 and response.json["error"]["code"] == "empty_import"
    response = clerk.post("/api/v1/dossiers/import", data=b"\xff\xfe", content_type="text/csv")
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_utf8"


def test_import_twice_is_refused_the_second_time(clerk):
    assert clerk.post("/api/v1/dossiers/import", data=GOOD, content_type="text/csv").status_code == 201
    again = clerk.post("/api/v1/dossiers/import", data=GOOD, content_type="text/csv")
    assert again.status_code == 422 and len(again.json["error"]["details"]["problems"]) == 2


def test_import_needs_a_login(client):
    assert client.post("/api/v1/dossiers/import", data=GOOD, content_type="text/csv").status_code == 401
