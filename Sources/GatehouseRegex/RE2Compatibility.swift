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

    /// A quantified group whose body repeats without bound too (`(a+)+`, `(\\w+\\s?)*`, `(x*){2,}`):
    /// RE2 runs it in linear time, PCRE2 backtracks exponentially on a subject that almost matches and
    /// stops at its match limit, so such requests are refused. Istio accepts the pattern, so this is
    /// advice, not an error.
    static func backtrackingHazard(in pattern: String) -> Finding? {
        let chars = Array(pattern.unicodeScalars)
        // Per open group: where it starts, and whether its body repeats without bound.
        var groups: [(start: Int, unbounded: Bool)] = []
        var index = 0
        var inClass = false
        func markUnbounded() { if !groups.isEmpty { groups[groups.count - 1].unbounded = true } }
        /// The quantifier at `index`: (length, unbounded), or nil when there is none.
        func quantifier(at index: Int) -> (length: Int, unbounded: Bool, repeats: Bool)? {
            guard index < chars.count else { return nil }
            switch chars[index] {
            case "*", "+": return (1, true, true)
            case "?": return (1, false, false)
            case "{":
                guard let close = chars[index...].firstIndex(of: "}") else { return nil }
                let body = String(String.UnicodeScalarView(chars[(index + 1)..<close]))
                let parts = body.split(separator: ",", omittingEmptySubsequences: false)
                guard (1...2).contains(parts.count), parts.allSatisfy({ $0.allSatisfy(\.isNumber) }), !parts[0].isEmpty
                else { return nil }
                let upper = parts.count == 2 ? Int(parts[1]) : Int(parts[0])
                return (close - index + 1, parts.count == 2 && parts[1].isEmpty, upper.map { $0 > 1 } ?? true)
            default: return nil
            }
        }
        while index < chars.count {
            let char = chars[index]
            if char == "\\" { index += 2; continue }
            if inClass {
                if char == "]" { inClass = false }
                index += 1
                continue
            }
            switch char {
            case "[":
                inClass = true
                if index + 1 < chars.count, chars[index + 1] == "]" { index += 1 }
                else if index + 2 < chars.count, chars[index + 1] == "^", chars[index + 2] == "]" { index += 2 }
            case "(":
                groups.append((index, false))
            case ")":
                guard let group = groups.popLast() else { break }
                if let q = quantifier(at: index + 1) {
                    if q.repeats, group.unbounded {
                        return Finding(offset: group.start, message: "a repeated group that itself repeats without bound "
                            + "(nested quantifiers): RE2 runs it in linear time, but PCRE2 can backtrack exponentially, "
                            + "and a request that hits its match limit is refused (400)")
                    }
                    if q.unbounded || group.unbounded { markUnbounded() }
                    index += q.length
                } else if group.unbounded {
                    markUnbounded()
                }
            default:
                if let q = quantifier(at: index), q.unbounded { markUnbounded() }
            }
            index += 1
        }
        return nil
    }
}

