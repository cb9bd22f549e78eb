// SCIMMY (npm) on loopback, its resources held in memory: `node server.mjs PORT`.
// SCIMMY parses, validates, filters and patches; this file only routes HTTP to it and stores.
import http from "node:http";
import {randomUUID} from "node:crypto";
import SCIMMY from "scimmy";

const BASE = "/scim/v2";
const users = new Map();
const groups = new Map();

SCIMMY.Config.set({patch: true, filter: true, sort: false, bulk: false, changePassword: false, etag: false});

const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);
const select = (resource, store) => {
    if (resource.id) {
        if (!store.has(resource.id)) throw notFound(resource.id);
        return store.get(resource.id);
    }
    const all = [...store.values()];
    return resource.filter ? resource.filter.match(all) : all;
};
const userGroups = (id) => [...groups.values()]
    .filter((g) => (g.members ?? []).some((m) => m.value === id))
    .map((g) => ({value: g.id, display: g.displayName, type: "direct"}));

SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .ingress((resource, instance) => {
        const taken = [...users.values()].find((u) => u.userName.toLowerCase() === instance.userName.toLowerCase());
        if (taken && taken.id !== resource.id) throw new SCIMMY.Types.Error(409, "uniqueness", "userName is taken");
        if (resource.id && !users.has(resource.id)) throw notFound(resource.id);
        const id = resource.id ?? randomUUID();
        const {groups: _readOnly, ...stored} = JSON.parse(JSON.stringify(instance));
        users.set(id, {...stored, id, meta: {resourceType: "User"}});
        return {...users.get(id), groups: userGroups(id)};
    })
    .egress((resource) => {
        const found = select(resource, users);
        const withGroups = (u) => ({...u, groups: userGroups(u.id)});
        return Array.isArray(found) ? found.map(withGroups) : withGroups(found);
    })
    .degress((resource) => {
        if (!users.delete(resource.id)) throw notFound(resource.id);
        for (const g of groups.values()) g.members = (g.members ?? []).filter((m) => m.value !== resource.id);
    });

SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress((resource, instance) => {
        if (resource.id && !groups.has(resource.id)) throw notFound(resource.id);
        const id = resource.id ?? randomUUID();
        groups.set(id, {...JSON.parse(JSON.stringify(instance)), id, meta: {resourceType: "Group"}});
        return groups.get(id);
    })
    .egress((resource) => select(resource, groups))
    .degress((resource) => {
        if (!groups.delete(resource.id)) throw notFound(resource.id);
    });

SCIMMY.Resources.User.basepath(BASE);
SCIMMY.Resources.Group.basepath(BASE);

function query(url) {
    const params = Object.fromEntries(url.searchParams.entries());
    for (const key of ["startIndex", "count"]) if (key in params) params[key] = Number(params[key]);
    return params;
}

async function route(method, path, params, body) {
    const [, kind, id] = path.slice(BASE.length).split("/");
    const type = {Users: SCIMMY.Resources.User, Groups: SCIMMY.Resources.Group}[kind];
    if (type) {
        const resource = id ? new type(decodeURIComponent(id), params) : new type(params);
        if (method === "GET") return [200, await resource.read()];
        if (method === "POST" && !id) return [201, await resource.write(body)];
        if (method === "PUT" && id) return [200, await resource.write(body)];
        if (method === "PATCH" && id) {
            const patched = await resource.patch(body);
            return patched ? [200, patched] : [204, undefined];
        }
        if (method === "DELETE" && id) return [204, await resource.dispose()];
    }
    if (method === "GET" && kind === "ResourceTypes") return [200, await new SCIMMY.Resources.ResourceType(params).read()];
    if (method === "GET" && kind === "Schemas") return [200, await new SCIMMY.Resources.Schema(params).read()];
    if (method === "GET" && kind === "ServiceProviderConfig")
        return [200, await new SCIMMY.Resources.ServiceProviderConfig(params).read()];
    throw new SCIMMY.Types.Error(404, null, `no endpoint ${method} ${path}`);
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
        const url = new URL(req.url, "http://127.0.0.1");
        let status, payload;
        try {
            const text = Buffer.concat(chunks).toString();
            [status, payload] = await route(req.method, url.pathname, query(url), text ? JSON.parse(text) : undefined);
        } catch (ex) {
            status = ex.status ?? 500;
            payload = new SCIMMY.Messages.Error(ex instanceof SCIMMY.Types.Error ? ex : {status: 400, message: String(ex)});
        }
        const out = payload === undefined ? "" : JSON.stringify(payload);
        res.writeHead(status, {"Content-Type": "application/scim+json", "Content-Length": Buffer.byteLength(out)});
        res.end(status === 204 ? undefined : out);
    });
});

server.listen(Number(process.argv[2]), "127.0.0.1", () => console.log(`SCIMMY on http://127.0.0.1:${process.argv[2]}${BASE}`));
