import GatehouseRouting

func input(_ path: String, method: String = "GET", authority: String = "example.com", scheme: String = "http",
           port: Int = 8080, headers: [(String, String)] = []) -> RouteInput {
    let (path, query) = RouteInput.split(target: path)
    return RouteInput(method: method, path: path, query: query, scheme: scheme, authority: authority, port: port,
                      headers: HeaderList(headers))
}

func direct(_ name: String, _ matches: [RouteMatch]) -> Route {
    Route(name: name, matches: matches, action: .directResponse(status: 200, body: []))
}

func chosen(_ host: VirtualHost, _ request: RouteInput) -> String? {
    try! host.select(request)?.route.name
}
