/// Finds constructs PCRE2 accepts but RE2 (Istio's regex engine) rejects. Rejecting them keeps a config
/// portable both ways and removes the constructs that make backtracking explode.
enum RE2Compatibility {
    struct Finding { let offset: Int; let message: String }

    static func unsupportedConstruct(in pattern: String) -> Finding? {
        let chars = Array(pattern.unicodeScalars)
        var index = 0
        var inClass = false
        while index < chars.count {
            let char = chars[index]
            if char == "\\" {
                guard index + 1 < chars.count else { return nil }
                let next = chars[index + 1]
                if !inClass, ("1"..."9").contains(next) {
                    return Finding(offset: index, message: "backreferences are not supported (RE2 syntax)")
                }
                if !inClass, next == "k" || next == "g" {
                    return Finding(offset: index, message: "backreferences are not supported (RE2 syntax)")
                }
                index += 2
                continue
            }
            if inClass {
                if char == "]" { inClass = false }
                index += 1
                continue
            }
            if char == "[" {
                inClass = true
                // A ']' right after '[' or '[^' is a literal.
                if index + 1 < chars.count, chars[index + 1] == "]" { index += 1 }
                else if index + 2 < chars.count, chars[index + 1] == "^", chars[index + 2] == "]" { index += 2 }
                index += 1
                continue
            }
            if char == "(", index + 1 < chars.count, chars[index + 1] == "?" {
                let rest = String(String.UnicodeScalarView(chars[(index + 2)...].prefix(3)))
                if rest.hasPrefix("=") || rest.hasPrefix("!") || rest.hasPrefix("<=") || rest.hasPrefix("<!") {
                    return Finding(offset: index, message: "lookaround assertions are not supported (RE2 syntax)")
                }
                if rest.hasPrefix(">") {
                    return Finding(offset: index, message: "atomic groups are not supported (RE2 syntax)")
                }
                if rest.hasPrefix("R") || rest.first?.isNumber == true || rest.hasPrefix("&") || rest.hasPrefix("+") {
                    return Finding(offset: index, message: "recursion is not supported (RE2 syntax)")
                }
            }
            if char == "+" || char == "*" || char == "?" || char == "}",
               index + 1 < chars.count, chars[index + 1] == "+" {
                return Finding(offset: index + 1, message: "possessive quantifiers are not supported (RE2 syntax)")
            }
            index += 1
        }
        return nil
    }
}
