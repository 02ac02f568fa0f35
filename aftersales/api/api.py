from ninja import NinjaAPI

api = NinjaAPI(title="AfterSales API", version="1", urls_namespace="api")
