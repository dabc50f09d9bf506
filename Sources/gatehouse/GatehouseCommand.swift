import ArgumentParser

@main
struct GatehouseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "An ingress/egress gateway configured with Istio's own resources.",
        version: GatehouseVersion.string,
        subcommands: [RunCommand.self, ValidateCommand.self, ExplainCommand.self, ReadyCommand.self, VersionCommand.self])
}

enum GatehouseVersion {
    static let string = "0.1.0"
}

struct ConfigPaths: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp(
        "A config file or a directory of *.yaml/*.yml files (repeatable).", valueName: "path"))
    var paths: [String] = []

    var resolved: [String] { paths.isEmpty ? ["/etc/gatehouse"] : paths }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")
    func run() { print("gatehouse \(GatehouseVersion.string)") }
}
