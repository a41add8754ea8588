/**
 * The syntax of the router's rules (networks, relay hosts, routes). Parsers only: nothing here looks anything
 * up. Not exported: the shell bundle carries its own copy of this package, made at build time (bnd's
 * -conditionalpackage), so that the console refuses exactly what the router would not take while depending
 * on api alone at runtime.
 */
package org.postern.router.rules;
