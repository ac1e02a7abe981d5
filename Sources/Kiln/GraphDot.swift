/// Graphviz DOT drawings of graphs.
public enum GraphDot {
    /// The graph in DOT: forward nodes as boxes (inputs as ellipses), backward nodes filled
    /// red, gradient edges dashed red, and each gradient linked to the node it is the gradient
    /// of by a dotted "∂" edge. `values` (scalars by node id) are written into the labels, so a
    /// small graph shows its forward values, upstream gradients and local gradients.
    public static func render(_ graph: Graph, values: [Int: Double] = [:], title: String = "kiln") -> String {
        func escape(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") }
        var lines = ["digraph \"\(escape(title))\" {", "  rankdir=LR;", "  node [fontname=\"Helvetica\", fontsize=10];"]
        for n in graph.nodes {
            var label = n.name.map { "\($0)\n" } ?? ""
            label += n.op.name
            if n.shape != .scalar { label += "\n\(n.shape)" }
            if let g = graph.gradientOf[n.id] { label = "∂loss/∂\(graph.nodes[g].label)\n" + label }
            if let v = values[n.id] { label += "\n= \(v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v))" }
            var attrs = "label=\"\(escape(label))\""
            if case .input = n.op { attrs += ", shape=ellipse" } else { attrs += ", shape=box" }
            if n.role == .backward { attrs += ", style=filled, fillcolor=\"#f8d0d0\"" }
            lines.append("  n\(n.id) [\(attrs)];")
        }
        for n in graph.nodes {
            for i in n.inputs {
                let style = n.role == .backward ? " [color=\"#c03030\", style=dashed]" : ""
                lines.append("  n\(i) -> n\(n.id)\(style);")
            }
        }
        for (g, f) in graph.gradientOf.sorted(by: { $0.key < $1.key }) {
            lines.append("  n\(f) -> n\(g) [style=dotted, color=\"#c03030\", label=\"∂\", constraint=false];")
        }
        for u in graph.updates {
            lines.append("  n\(u.value.id) -> n\(u.target.id) [style=bold, color=\"#3060c0\", label=\"update\", constraint=false];")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
