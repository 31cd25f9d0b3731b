from httpx import AsyncClient


async def test_health_answers_ok_without_io(client: AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_database_and_redis_up(client: AsyncClient) -> None:
    response = await client.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up", "redis": "up"}


async def test_openapi_is_served_under_the_api_prefix(client: AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Process Atlas"
    docs = await client.get("/docs")
    assert docs.status_code == 200
