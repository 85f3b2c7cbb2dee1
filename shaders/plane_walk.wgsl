// A walk over the pixels of an X_H x X_W plane that an invocation of a plane reduction takes:
// j = lid, lid + WG, lid + 2 WG, ... as (h, w), carried from step to step rather than divided out
// of j at each (a division by a size read from the uniform costs far more than a compare).
//     for (var p = plane_start(lid); p.h < X_H; plane_next(&p)) { ... ld_x(n, c, p.h, p.w) ... }

struct PlaneWalk {
    h: u32,
    w: u32,
}

fn plane_start(lid: u32) -> PlaneWalk {
    return PlaneWalk(lid / X_W, lid % X_W);
}

fn plane_next(p: ptr<function, PlaneWalk>) {
    (*p).h += WG / X_W;
    (*p).w += WG % X_W;
    if ((*p).w >= X_W) {
        (*p).w -= X_W;
        (*p).h += 1u;
    }
}
